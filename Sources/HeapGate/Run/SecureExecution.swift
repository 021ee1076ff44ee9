import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether the kernel will start a program in secure-execution mode (`AT_SECURE`), where the
/// dynamic loader ignores every LD_PRELOAD entry that names a path (ld.so(8)): the program
/// would run untraced. That is a set-user-ID file owned by someone else than the caller, or a
/// set-group-ID file of another group, unless the file system is mounted `nosuid` or the
/// caller runs with no_new_privs: then the bits change nothing. (File capabilities can also
/// set `AT_SECURE`; they are not looked at.)
enum SecureExecution {
    /// Why the program at `path` would start in secure-execution mode, or nil.
    static func reason(path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let setUID = info.st_mode & S_ISUID != 0 && info.st_uid != getuid()
        let setGID = info.st_mode & S_ISGID != 0 && info.st_mode & S_IXGRP != 0 && info.st_gid != getgid()
        guard setUID || setGID else { return nil }
        var volume = statvfs()
        if statvfs(path, &volume) == 0, volume.f_flag & UInt(ST_NOSUID) != 0 { return nil }
        if noNewPrivileges() { return nil }
        return setUID ? "set-user-ID (owner uid \(info.st_uid))" : "set-group-ID (group gid \(info.st_gid))"
    }

    /// PR_GET_NO_NEW_PRIVS, read from /proc so that no prctl binding is needed.
    private static func noNewPrivileges() -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return false }
        return status.split(separator: "\n").contains { $0.hasPrefix("NoNewPrivs:") && $0.hasSuffix("1") }
    }
}
