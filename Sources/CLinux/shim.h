/* Linux interfaces that the Swift toolchain's Glibc module leaves out. */
#ifndef HEAPGATE_CLINUX_SHIM_H
#define HEAPGATE_CLINUX_SHIM_H

#include <sys/xattr.h> /* getxattr: a program's file capabilities (SecureExecution.swift) */

#endif
