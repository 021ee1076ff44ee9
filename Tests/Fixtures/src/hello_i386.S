/*
 * hello_i386.S - a 32-bit x86 program: prints one line and exits 0.
 *
 * Built with `cc -m32 -nostdlib -static`, so that it needs no 32-bit C library: two Linux
 * system calls through int $0x80. heapgate's shim is x86-64 code, which the loader of a
 * 32-bit program cannot load; `heapgate run` must say so instead of running the program
 * untraced (LaunchTests.programForAnotherArchitecture).
 */
    .text
    .globl _start
_start:
    movl $4, %eax          /* write(1, message, length) */
    movl $1, %ebx
    movl $message, %ecx
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
