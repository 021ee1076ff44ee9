#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns mangled linker symbols back into readable names.
///
/// Supported schemes, tried in this order:
/// - Rust legacy (`_ZN…17h<16 hex>E`) and Rust v0 (`_R…`), see `RustDemangler`;
/// - C++ Itanium (`_Z…`) through the C++ runtime's `__cxa_demangle`;
/// - Swift (`$s…`, `$S…`, `$e…`, `_T0…`) through the Swift runtime's `swift_demangle`.
///
/// Anything that is not a mangled name, or that the decoder rejects, comes back unchanged.
public enum Demangler {
    public static func demangle(_ symbol: String) -> String {
        if let rust = RustDemangler.demangle(symbol) { return rust }
        if isItanium(symbol), let cxx = cxaDemangle(symbol) { return cxx }
        if isSwift(symbol), let swift = swiftDemangle(symbol) { return swift }
        return symbol
    }

    static func isItanium(_ symbol: String) -> Bool {
        symbol.hasPrefix("_Z") || symbol.hasPrefix("__Z")
    }

    static func isSwift(_ symbol: String) -> Bool {
        ["$s", "$S", "$e", "_T0", "_$s", "_$S", "_$e"].contains { symbol.hasPrefix($0) }
    }

    // MARK: C++

    private typealias CxaDemangleFn = @convention(c) (
        UnsafePointer<CChar>?, UnsafeMutablePointer<CChar>?, UnsafeMutablePointer<Int>?, UnsafeMutablePointer<Int32>?
    ) -> UnsafeMutablePointer<CChar>?

    /// `__cxa_demangle`, looked up once with `dlsym`; the Swift runtime on Linux links libstdc++,
    /// so the symbol is present in every process that runs Swift code. Nil if it is not.
    private static let cxaDemangleFn: CxaDemangleFn? = {
        guard let handle = dlopen(nil, RTLD_NOW), let sym = dlsym(handle, "__cxa_demangle") else { return nil }
        return unsafeBitCast(sym, to: CxaDemangleFn.self)
    }()

    /// Wraps `__cxa_demangle(mangled, NULL, NULL, &status)`; frees the returned buffer.
    private static func cxaDemangle(_ symbol: String) -> String? {
        guard let fn = cxaDemangleFn else { return nil }
        var status: Int32 = 0
        guard let out = symbol.withCString({ fn($0, nil, nil, &status) }) else { return nil }
        defer { free(out) }
        return status == 0 ? String(cString: out) : nil
    }

    // MARK: Swift

    /// Wraps the Swift runtime's `swift_demangle(mangled, length, NULL, NULL, 0)`; frees the result.
    private static func swiftDemangle(_ symbol: String) -> String? {
        guard let out = symbol.withCString({ _swift_demangle($0, strlen($0), nil, nil, 0) }) else { return nil }
        defer { free(out) }
        return String(cString: out)
    }
}

/// `char *swift_demangle(const char *mangledName, size_t mangledNameLength,
///                       char *outputBuffer, size_t *outputBufferSize, uint32_t flags)`
/// from the Swift runtime. Returns a malloc'd string, or NULL if the input is not a Swift symbol.
@_silgen_name("swift_demangle")
private func _swift_demangle(
    _ mangledName: UnsafePointer<CChar>?,
    _ mangledNameLength: Int,
    _ outputBuffer: UnsafeMutablePointer<CChar>?,
    _ outputBufferSize: UnsafeMutablePointer<Int>?,
    _ flags: UInt32
) -> UnsafeMutablePointer<CChar>?
