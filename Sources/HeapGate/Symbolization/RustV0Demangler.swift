/// Demangler for Rust "v0" symbols (`_R…`, RFC 2603), printing what rustc-demangle prints
/// with `{:#}`: crate disambiguators (`[1a2b…]`) and integer constant type suffixes are left out.
///
/// Covers paths (crate roots, nested namespaces incl. closures and shims, inherent and trait impls,
/// trait definitions, generic arguments), types (basic, references, raw pointers, arrays, slices,
/// tuples, `fn` pointers with binders/unsafe/ABI, `dyn` traits with associated type bindings),
/// lifetimes, integer/bool/char const generics, backrefs and punycode identifiers.
/// Structured constants (`&str`, arrays, ADTs as const arguments) and encoding versions other than
/// the default are rejected: `demangle` returns nil and the caller keeps the original text.
final class RustV0Demangler {
    private struct Invalid: Error {}

    /// Identifier with its (optional) disambiguator; `name` already decoded from punycode.
    private struct Ident {
        var disambiguator: UInt64
        var name: String
    }

    private static let maxDepth = 200
    private static let maxOutput = 1 << 16

    /// The symbol without the `_R` prefix; backrefs are offsets into it.
    private let sym: [UInt8]
    private var pos = 0
    private var out: [UInt8] = []
    /// When false, parse without printing (the impl path of `M`/`X`, the instantiating crate).
    private var printing = true
    private var depth = 0
    private var boundLifetimes: UInt64 = 0

    private init(_ sym: [UInt8]) { self.sym = sym }

    /// `symbol` must be the whole `_R…` name without any `.suffix`.
    static func demangle(_ symbol: String) -> String? {
        let bytes = Array(symbol.utf8)
        guard bytes.count > 2, bytes[0] == UInt8(ascii: "_"), bytes[1] == UInt8(ascii: "R") else { return nil }
        let parser = RustV0Demangler(Array(bytes[2...]))
        do {
            // A leading decimal would be an encoding version; paths start with an uppercase letter.
            guard let first = parser.peek(), isUpper(first) else { return nil }
            try parser.printPath(inValue: true)
            if let next = parser.peek(), isUpper(next) {  // instantiating crate
                parser.printing = false
                try parser.printPath(inValue: false)
            }
            guard parser.pos == parser.sym.count else { return nil }
        } catch {
            return nil
        }
        return String(decoding: parser.out, as: UTF8.self)
    }

    // MARK: Output

    private func emit(_ text: String) throws {
        guard printing else { return }
        out.append(contentsOf: text.utf8)
        if out.count > Self.maxOutput { throw Invalid() }
    }

    private func emitLifetime(_ index: UInt64) throws {
        if index == 0 { return try emit("'_") }
        guard index <= boundLifetimes else { throw Invalid() }
        let distance = boundLifetimes - index
        if distance < 26 {
            try emit("'" + String(UnicodeScalar(UInt8(ascii: "a") + UInt8(distance))))
        } else {
            try emit("'_\(distance)")
        }
    }

    // MARK: Lexing

    private func peek() -> UInt8? { pos < sym.count ? sym[pos] : nil }

    private func next() throws -> UInt8 {
        guard let byte = peek() else { throw Invalid() }
        pos += 1
        return byte
    }

    private func eat(_ c: Character) -> Bool {
        guard peek() == c.asciiValue else { return false }
        pos += 1
        return true
    }

    private static func isUpper(_ byte: UInt8) -> Bool { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) }
    private static func isLower(_ byte: UInt8) -> Bool { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) }

    /// `<base-62-number> = {0-9a-zA-Z} "_"`, where `_` alone is 0 and digits encode value - 1.
    private func base62() throws -> UInt64 {
        if eat("_") { return 0 }
        var value: UInt64 = 0
        while !eat("_") {
            let byte = try next()
            let digit: UInt8
            if let d = RustDemangler.decimalDigit(byte) { digit = UInt8(d) }
            else if Self.isLower(byte) { digit = byte - UInt8(ascii: "a") + 10 }
            else if Self.isUpper(byte) { digit = byte - UInt8(ascii: "A") + 36 }
            else { throw Invalid() }
            let (shifted, o1) = value.multipliedReportingOverflow(by: 62)
            let (sum, o2) = shifted.addingReportingOverflow(UInt64(digit))
            guard !o1, !o2 else { throw Invalid() }
            value = sum
        }
        guard value < UInt64.max else { throw Invalid() }
        return value + 1
    }

    /// `[tag <base-62-number>]`: 0 when absent, else the number + 1.
    private func optionalBase62(_ tag: Character) throws -> UInt64 {
        eat(tag) ? try base62() + 1 : 0
    }

    private func decimal() throws -> Int {
        guard let first = peek().flatMap(RustDemangler.decimalDigit) else { throw Invalid() }
        pos += 1
        if first == 0 { return 0 }
        var value = first
        while let d = peek().flatMap(RustDemangler.decimalDigit) {
            guard value < 1 << 24 else { throw Invalid() }
            value = value * 10 + d
            pos += 1
        }
        return value
    }

    /// `["u"] <decimal> ["_"] <bytes>`; `u` marks punycode with `_` standing for the final `-`.
    private func undisambiguatedIdent() throws -> String {
        let isPunycode = eat("u")
        let length = try decimal()
        _ = eat("_")
        guard pos + length <= sym.count else { throw Invalid() }
        let bytes = sym[pos..<pos + length]
        pos += length
        guard isPunycode else { return String(decoding: bytes, as: UTF8.self) }
        let split = bytes.lastIndex(of: UInt8(ascii: "_"))
        let ascii = split.map { bytes[..<$0] } ?? []
        let encoded = split.map { bytes[($0 + 1)...] } ?? bytes
        guard !encoded.isEmpty, let decoded = Punycode.decode(basic: ascii, encoded: encoded) else { throw Invalid() }
        return decoded
    }

    private func ident() throws -> Ident {
        let disambiguator = try optionalBase62("s")
        return Ident(disambiguator: disambiguator, name: try undisambiguatedIdent())
    }

    // MARK: Structure helpers

    /// Bounds recursion so hostile input cannot exhaust the stack.
    private func nested<T>(_ body: () throws -> T) throws -> T {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw Invalid() }
        return try body()
    }

    /// `B <base-62-number>`: re-reads an earlier part of the symbol (the `B` is already consumed).
    /// Targets must lie strictly before the backref itself, so following them always terminates.
    private func backref<T>(orWhenSkipping skipped: T, _ body: () throws -> T) throws -> T {
        let start = pos - 1
        let target = try base62()
        guard target < UInt64(start) else { throw Invalid() }
        guard printing else { return skipped }
        let resume = pos
        pos = Int(target)
        defer { pos = resume }
        return try body()
    }

    /// Items up to the closing `E`, separated by `separator`; returns how many there were.
    @discardableResult
    private func list(separator: String, _ item: () throws -> Void) throws -> Int {
        var count = 0
        while !eat("E") {
            if count > 0 { try emit(separator) }
            try item()
            count += 1
        }
        return count
    }

    /// `[G <base-62-number>]` introducing higher-ranked lifetimes, printed as `for<'a, 'b> `.
    private func binder(_ body: () throws -> Void) throws {
        let count = try optionalBase62("G")
        guard count < 1000 else { throw Invalid() }
        if count > 0 {
            try emit("for<")
            for i in 0..<count {
                if i > 0 { try emit(", ") }
                boundLifetimes += 1
                try emitLifetime(1)
            }
            try emit("> ")
        }
        defer { boundLifetimes -= count }
        try body()
    }

    // MARK: Grammar

    /// `inValue`: the path names a value (function, static), so generic args print as `::<…>`.
    private func printPath(inValue: Bool) throws {
        try nested {
            let tag = try next()
            switch tag {
            case UInt8(ascii: "C"):
                try emit(try ident().name)
            case UInt8(ascii: "N"):
                let namespace = try next()
                guard Self.isUpper(namespace) || Self.isLower(namespace) else { throw Invalid() }
                try printPath(inValue: inValue)
                let id = try ident()
                if Self.isUpper(namespace) {
                    let kind = namespace == UInt8(ascii: "C") ? "closure"
                        : namespace == UInt8(ascii: "S") ? "shim" : String(UnicodeScalar(namespace))
                    try emit("::{" + kind + (id.name.isEmpty ? "" : ":" + id.name) + "#\(id.disambiguator)}")
                } else if !id.name.isEmpty {
                    try emit("::" + id.name)
                }
            case UInt8(ascii: "M"), UInt8(ascii: "X"), UInt8(ascii: "Y"):
                if tag != UInt8(ascii: "Y") {  // the impl's own path is not printed
                    _ = try optionalBase62("s")
                    let wasPrinting = printing
                    printing = false
                    defer { printing = wasPrinting }
                    try printPath(inValue: false)
                }
                try emit("<")
                try printType()
                if tag != UInt8(ascii: "M") {
                    try emit(" as ")
                    try printPath(inValue: false)
                }
                try emit(">")
            case UInt8(ascii: "I"):
                try printPath(inValue: inValue)
                try emit(inValue ? "::<" : "<")
                try list(separator: ", ", printGenericArg)
                try emit(">")
            case UInt8(ascii: "B"):
                try backref(orWhenSkipping: ()) { try printPath(inValue: inValue) }
            default:
                throw Invalid()
            }
        }
    }

    private func printGenericArg() throws {
        if eat("L") {
            try emitLifetime(try base62())
        } else if eat("K") {
            try printConst()
        } else {
            try printType()
        }
    }

    private static let basicTypes: [UInt8: String] = [
        "a": "i8", "b": "bool", "c": "char", "d": "f64", "e": "str", "f": "f32", "h": "u8", "i": "isize",
        "j": "usize", "l": "i32", "m": "u32", "n": "i128", "o": "u128", "s": "i16", "t": "u16", "u": "()",
        "v": "...", "x": "i64", "y": "u64", "z": "!", "p": "_",
    ].reduce(into: [:]) { $0[$1.key.first!.asciiValue!] = $1.value }

    private func printType() throws {
        try nested {
            let tag = try next()
            if let basic = Self.basicTypes[tag] { return try emit(basic) }
            switch tag {
            case UInt8(ascii: "R"), UInt8(ascii: "Q"):
                try emit("&")
                if eat("L") {
                    let lifetime = try base62()
                    if lifetime != 0 {
                        try emitLifetime(lifetime)
                        try emit(" ")
                    }
                }
                if tag == UInt8(ascii: "Q") { try emit("mut ") }
                try printType()
            case UInt8(ascii: "P"):
                try emit("*const ")
                try printType()
            case UInt8(ascii: "O"):
                try emit("*mut ")
                try printType()
            case UInt8(ascii: "A"), UInt8(ascii: "S"):
                try emit("[")
                try printType()
                if tag == UInt8(ascii: "A") {
                    try emit("; ")
                    try printConst()
                }
                try emit("]")
            case UInt8(ascii: "T"):
                try emit("(")
                if try list(separator: ", ", printType) == 1 { try emit(",") }
                try emit(")")
            case UInt8(ascii: "F"):
                try binder(printFnSignature)
            case UInt8(ascii: "D"):
                try emit("dyn ")
                try binder { try list(separator: " + ", printDynTrait) }
                guard eat("L") else { throw Invalid() }
                let lifetime = try base62()
                if lifetime != 0 {
                    try emit(" + ")
                    try emitLifetime(lifetime)
                }
            case UInt8(ascii: "B"):
                try backref(orWhenSkipping: ()) { try printType() }
            default:
                pos -= 1
                try printPath(inValue: false)
            }
        }
    }

    /// `["U"] ["K" <abi>] {<type>} "E" <type>` → `unsafe extern "C" fn(A, B) -> R`.
    private func printFnSignature() throws {
        let isUnsafe = eat("U")
        var abi: String?
        if eat("K") {
            if eat("C") {
                abi = "C"
            } else {
                let name = try undisambiguatedIdent()
                guard !name.isEmpty, name.allSatisfy(\.isASCII) else { throw Invalid() }
                abi = String(name.map { $0 == "_" ? "-" : $0 })
            }
        }
        if isUnsafe { try emit("unsafe ") }
        if let abi { try emit("extern \"\(abi)\" ") }
        try emit("fn(")
        try list(separator: ", ", printType)
        try emit(")")
        if !eat("u") {  // `()` return type is not printed
            try emit(" -> ")
            try printType()
        }
    }

    /// A trait in `dyn`, with `p <name> <type>` associated type bindings merged into its generics:
    /// `dyn Fn<(u8,), Output = u8>`.
    private func printDynTrait() throws {
        var open = try printPathMaybeOpenGenerics()
        while eat("p") {
            try emit(open ? ", " : "<")
            open = true
            try emit(try undisambiguatedIdent() + " = ")
            try printType()
        }
        if open { try emit(">") }
    }

    /// Prints a path; when it ends in generic args, leaves the `<…` open and returns true.
    private func printPathMaybeOpenGenerics() throws -> Bool {
        if eat("B") {
            return try backref(orWhenSkipping: false) { try printPathMaybeOpenGenerics() }
        }
        if eat("I") {
            try printPath(inValue: false)
            try emit("<")
            try list(separator: ", ", printGenericArg)
            return true
        }
        try printPath(inValue: false)
        return false
    }

    /// `<type> <hex digits> "_"` for integers, bool and char, `p` for a placeholder, or a backref.
    private func printConst() throws {
        try nested {
            if eat("B") { return try backref(orWhenSkipping: ()) { try printConst() } }
            let tag = try next()
            switch tag {
            case UInt8(ascii: "p"):
                try emit("_")
            case UInt8(ascii: "h"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "y"), UInt8(ascii: "o"),
                 UInt8(ascii: "j"):
                try emit(try hexInteger())
            case UInt8(ascii: "a"), UInt8(ascii: "s"), UInt8(ascii: "l"), UInt8(ascii: "x"), UInt8(ascii: "n"),
                 UInt8(ascii: "i"):
                let negative = eat("n")
                try emit((negative ? "-" : "") + (try hexInteger()))
            case UInt8(ascii: "b"):
                switch try hexValue() {
                case 0: try emit("false")
                case 1: try emit("true")
                default: throw Invalid()
                }
            case UInt8(ascii: "c"):
                guard let value = try hexValue(), value <= 0x10FFFF,
                      let scalar = Unicode.Scalar(UInt32(value)) else { throw Invalid() }
                try emit(Self.quotedChar(scalar))
            default:
                throw Invalid()  // structured constants are not supported
            }
        }
    }

    /// Lowercase hex digits up to `_`; nil when the value does not fit in 64 bits.
    private func hexValue() throws -> UInt64? {
        let digits = try hexDigits()
        let significant = digits.drop { $0 == UInt8(ascii: "0") }
        guard significant.count <= 16 else { return nil }
        return significant.reduce(0) { $0 << 4 | UInt64(RustDemangler.hexDigit($1)!) }
    }

    /// Decimal when it fits in 64 bits, else `0x…` as written.
    private func hexInteger() throws -> String {
        let start = pos
        if let value = try hexValue() { return String(value) }
        return "0x" + String(decoding: sym[start..<(pos - 1)], as: UTF8.self)
    }

    private func hexDigits() throws -> ArraySlice<UInt8> {
        let start = pos
        while !eat("_") {
            guard RustDemangler.hexDigit(try next()) != nil else { throw Invalid() }
        }
        return sym[start..<(pos - 1)]
    }

    /// Rust `{:?}` style char literal for the common cases: `'a'`, `'\n'`, `'\''`, `'\u{7f}'`.
    private static func quotedChar(_ scalar: Unicode.Scalar) -> String {
        switch scalar {
        case "\n": return "'\\n'"
        case "\r": return "'\\r'"
        case "\t": return "'\\t'"
        case "\0": return "'\\0'"
        case "'": return "'\\''"
        case "\\": return "'\\\\'"
        default:
            if scalar.properties.generalCategory == .control {
                return "'\\u{" + String(scalar.value, radix: 16) + "}'"
            }
            return "'" + String(scalar) + "'"
        }
    }
}

/// RFC 3492 punycode decoding, as used by v0 for non-ASCII identifiers.
enum Punycode {
    private static let base: UInt64 = 36, tMin: UInt64 = 1, tMax: UInt64 = 26
    private static let skew: UInt64 = 38, damp: UInt64 = 700

    static func decode(basic: ArraySlice<UInt8>, encoded: ArraySlice<UInt8>) -> String? {
        guard basic.allSatisfy({ $0 < 0x80 }) else { return nil }
        var output = basic.map { Unicode.Scalar($0) }
        var n: UInt64 = 128, i: UInt64 = 0, bias: UInt64 = 72
        var index = encoded.startIndex
        while index < encoded.endIndex {
            let oldI = i
            var weight: UInt64 = 1
            var k = base
            while true {
                guard index < encoded.endIndex, let digit = digitValue(encoded[index]) else { return nil }
                index += 1
                i += digit * weight
                let t = k <= bias ? tMin : min(k - bias, tMax)
                if digit < t { break }
                weight *= base - t
                k += base
                guard i < 1 << 32, weight < 1 << 32 else { return nil }
            }
            let count = UInt64(output.count + 1)
            bias = adapt(delta: i - oldI, count: count, first: oldI == 0)
            n += i / count
            i %= count
            guard n <= 0x10FFFF, let scalar = Unicode.Scalar(UInt32(n)) else { return nil }
            output.insert(scalar, at: Int(i))
            i += 1
        }
        var result = ""
        result.unicodeScalars.append(contentsOf: output)
        return result
    }

    private static func digitValue(_ byte: UInt8) -> UInt64? {
        if (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) { return UInt64(byte - UInt8(ascii: "a")) }
        if let d = RustDemangler.decimalDigit(byte) { return UInt64(d + 26) }
        return nil
    }

    private static func adapt(delta: UInt64, count: UInt64, first: Bool) -> UInt64 {
        var delta = first ? delta / damp : delta / 2
        delta += delta / count
        var k: UInt64 = 0
        while delta > ((base - tMin) * tMax) / 2 {
            delta /= base - tMin
            k += base
        }
        return k + (base - tMin + 1) * delta / (delta + skew)
    }
}
