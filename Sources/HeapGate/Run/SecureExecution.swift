import CLinux
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Whether the kernel will start a program in secure-execution mode (`AT_SECURE`), where the
/// dynamic loader ignores every LD_PRELOAD entry that names a path (ld.so(8)): the program
/// would run untraced. That is a set-user-ID file owned by someone else than the caller, a
/// set-group-ID file of another group, or, for a caller other than root, a file with
/// capabilities (Debian's `ping` has `cap_net_raw`), unless the file system is mounted
/// `nosuid` or the caller runs with no_new_privs: then none of these changes anything.
enum SecureExecution {
    /// Why the ELF program at `path` would start in secure-execution mode, or nil.
    static func reason(path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let why: String
        if info.st_mode & S_ISUID != 0 && info.st_uid != getuid() {
            why = "set-user-ID (owner uid \(info.st_uid))"
        } else if info.st_mode & S_ISGID != 0 && info.st_mode & S_IXGRP != 0 && info.st_gid != getgid() {
            why = "set-group-ID (group gid \(info.st_gid))"
        } else if getuid() != 0 && getxattr(path, "security.capability", nil, 0) > 0 {
            // Root holds every capability already; anyone else gains some, which the kernel
            // treats as a change of privilege.
            why = "given file capabilities (getcap lists them)"
        } else {
            return nil
        }
        var volume = statvfs()
        if statvfs(path, &volume) == 0, volume.f_flag & UInt(ST_NOSUID) != 0 { return nil }
        if noNewPrivileges() { return nil }
        return why
    }

    /// PR_GET_NO_NEW_PRIVS, read from /proc so that no prctl binding is needed.
    private static func noNewPrivileges() -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return false }
        return status.split(separator: "\n").contains { $0.hasPrefix("NoNewPrivs:") && $0.hasSuffix("1") }
    }
}
