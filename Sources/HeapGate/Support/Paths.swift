/// The last component of `path` ("c" of "/a/b/c"), by string work.
func fileName(of path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
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
