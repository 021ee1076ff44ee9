/// The last component of `path` ("c" of "/a/b/c", "b" of "a/b/"), by string work; `path` itself
/// when it has none ("/"). On UTF-8 bytes: splitting by Character pays for grapheme breaking,
/// and a report calls this for every frame.
func fileName(of path: String) -> String {
    let bytes = path.utf8
    let slash = UInt8(ascii: "/")
    guard let last = bytes.lastIndex(where: { $0 != slash }) else { return path }
    let end = bytes.index(after: last)
    let start = bytes[..<end].lastIndex(of: slash).map { bytes.index(after: $0) } ?? bytes.startIndex
    // Both ends sit next to a "/" byte or at the ends of the string: character boundaries.
    return String(path[start..<end])
}

/// The directory part of `path`, by string work (no file system access): "/a/b/c" → "/a/b",
/// "/a" → "/", nil for a path without a "/".
func directoryName(of path: String) -> String? {
    guard let slash = path.lastIndex(of: "/") else { return nil }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

/// `name` inside `directory`, with one "/" between them ("/" and "lib" → "/lib").
func joinedPath(_ directory: String, _ name: String) -> String {
    directory.hasSuffix("/") ? directory + name : directory + "/" + name
}
