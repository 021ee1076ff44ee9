/*
 * hello_i386.S - a 32-bit x86 program: prints one line and exits 0.
 *
 * Two Linux system calls through int $0x80, so it needs no 32-bit C library. Built twice
 * with `cc -m32 -nostdlib`: static (hello_i386), and as a position-independent executable
 * whose loader is glibc's 32-bit one (hello_i386_dynamic, which runs where libc6-i386 is
 * installed). heapgate's shim is x86-64 code, which a 32-bit program's loader cannot load:
 * `heapgate run` must refuse the first (LaunchTests.programForAnotherArchitecture), and the
 * second, started by a traced program, must run without the loader's complaint about the
 * preload (ProcessTreeTests.thirtyTwoBitChildRunsQuietly).
 */
    .text
    .globl _start
_start:
    call 1f                /* the message's address, position-independent */
1:  popl %ecx
    addl $(message - 1b), %ecx
    movl $4, %eax          /* write(1, message, length) */
    movl $1, %ebx
    movl $length, %edx
    int $0x80
    movl $1, %eax          /* exit(0) */
    xorl %ebx, %ebx
    int $0x80

    .data
message:
    .ascii "hello from a 32-bit program\n"
    .set length, . - message

    .section .note.GNU-stack, "", @progbits
