/// Rust symbol demangling, printed like rustc-demangle's alternate form (`{:#}`):
/// no trailing `::h<hash>` for legacy symbols, no `[<crate hash>]` for v0 symbols.
///
/// Returns nil for anything that is not a Rust symbol (or that the decoder does not
/// understand) so the caller can try other schemes or keep the input unchanged.
enum RustDemangler {
    static func demangle(_ symbol: String) -> String? {
        let core = stripLLVMSuffix(symbol)
        if core.hasPrefix("_R") {
            // v0 never uses `.` or `$`; a compiler-added `.cold`, `.constprop.0`, … is kept verbatim.
            let end = core.firstIndex(where: { $0 == "." || $0 == "$" }) ?? core.endIndex
            return RustV0Demangler.demangle(String(core[..<end])).map { $0 + core[end...] }
        }
        if core.hasPrefix("_ZN") { return demangleLegacy(String(core)) }
        return nil
    }

    /// ThinLTO renames local symbols to `name.llvm.<hex>`; that ending carries no meaning for readers.
    private static func stripLLVMSuffix(_ symbol: String) -> Substring {
        let marker = ".llvm."
        guard let start = symbol.indices.first(where: { symbol[$0...].hasPrefix(marker) }) else { return symbol[...] }
        let tail = symbol[start...].dropFirst(marker.count)
        let isHex = tail.allSatisfy { $0 == "@" || ("0"..."9").contains($0) || ("A"..."F").contains($0) }
        return isHex ? symbol[..<start] : symbol[...]
    }

    // MARK: Legacy (`_ZN` … `17h<16 hex digits>E`)

    /// `_ZN` <len><element>… `E`, where the last element is the `h` + 16 hex digit hash.
    /// Requiring the hash keeps plain C++ `_ZN…E` names (which have no such element) away from this path.
    static func demangleLegacy(_ symbol: String) -> String? {
        let bytes = Array(symbol.utf8)
        guard bytes.starts(with: Array("_ZN".utf8)), bytes.allSatisfy({ $0 < 0x80 }) else { return nil }
        var pos = 3
        var elements: [ArraySlice<UInt8>] = []
        while pos < bytes.count, bytes[pos] != UInt8(ascii: "E") {
            var length = 0
            while pos < bytes.count, let digit = decimalDigit(bytes[pos]) {
                guard length < 1 << 20 else { return nil }
                length = length * 10 + digit
                pos += 1
            }
            guard length > 0, pos + length <= bytes.count else { return nil }
            elements.append(bytes[pos..<pos + length])
            pos += length
        }
        guard pos < bytes.count, elements.count >= 2, let hash = elements.last, isLegacyHash(hash) else { return nil }
        let rest = bytes[(pos + 1)...]
        guard rest.isEmpty || rest.first == UInt8(ascii: ".") else { return nil }
        let path = elements.dropLast().map(decodeLegacyElement).joined(separator: "::")
        return path + String(decoding: rest, as: UTF8.self)
    }

    private static func isLegacyHash(_ element: ArraySlice<UInt8>) -> Bool {
        element.count == 17 && element.first == UInt8(ascii: "h")
            && element.dropFirst().allSatisfy { hexDigit($0) != nil }
    }

    /// Undoes rustc's legacy escaping: `$LT$` → `<`, `$u20$` → ` `, `..` → `::`, a leading `_$` → `$`.
    private static func decodeLegacyElement(_ element: ArraySlice<UInt8>) -> String {
        var text = Substring(String(decoding: element, as: UTF8.self))
        if text.hasPrefix("_$") { text = text.dropFirst() }
        var out = ""
        while let c = text.first {
            if text.hasPrefix("..") {
                out += "::"
                text = text.dropFirst(2)
            } else if c == "$", let end = text.dropFirst().firstIndex(of: "$"),
                      let decoded = legacyEscape(text[text.index(after: text.startIndex)..<end]) {
                out.append(decoded)
                text = text[text.index(after: end)...]
            } else {
                out.append(c)
                text = text.dropFirst()
            }
        }
        return out
    }

    private static let legacyEscapes: [Substring: Character] = [
        "SP": "@", "BP": "*", "RF": "&", "LT": "<", "GT": ">", "LP": "(", "RP": ")", "C": ",",
    ]

    /// The character for the escape between two `$`, or nil to keep the text as it is.
    private static func legacyEscape(_ code: Substring) -> Character? {
        if let c = legacyEscapes[code] { return c }
        guard code.first == "u", code.count > 1, let value = UInt32(code.dropFirst(), radix: 16),
              let scalar = Unicode.Scalar(value), scalar.properties.generalCategory != .control else { return nil }
        return Character(scalar)
    }

    static func decimalDigit(_ byte: UInt8) -> Int? {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) ? Int(byte - UInt8(ascii: "0")) : nil
    }

    /// Lowercase hexadecimal digit value, as both Rust manglings use.
    static func hexDigit(_ byte: UInt8) -> Int? {
        if let d = decimalDigit(byte) { return d }
        return (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte) ? Int(byte - UInt8(ascii: "a")) + 10 : nil
    }
}
