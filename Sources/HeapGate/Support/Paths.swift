/// The directory part of `path`, by string work (no file system access): "/a/b/c" → "/a/b",
/// "/a" → "".
func parentDirectory(of path: String) -> String {
    String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
}
