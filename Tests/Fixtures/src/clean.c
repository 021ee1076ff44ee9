/*
 * clean.c - frees everything it allocates.
 *
 * build_list() mallocs a 10-node linked list (10 x 16 bytes) plus a
 * 64-byte calloc'ed array, grows the array with realloc to 256 bytes;
 * free_list() frees everything.  valgrind: 12 allocs, 12 frees,
 * 480 bytes allocated (160 + 64 + 256), 0 bytes in use at exit.
 * Output via write(2), no stdio.  Exit status 0.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct node {
    struct node *next;
    long value;
};

__attribute__((noinline)) struct node *build_list(int n)
{
    struct node *head = NULL;
    for (int i = 0; i < n; i++) {
        struct node *nd = malloc(sizeof *nd);
        nd->value = i;
        nd->next = head;
        head = nd;
    }
    return head;
}

__attribute__((noinline)) long free_list(struct node *head)
{
    long sum = 0;
    while (head) {
        struct node *next = head->next;
        sum += head->value;
        free(head);
        head = next;
    }
    return sum;
}

__attribute__((noinline)) int use_array(void)
{
    int *a = calloc(16, sizeof(int));
    a[15] = 15;
    a = realloc(a, 64 * sizeof(int));
    a[63] = 63;
    int r = a[15] + a[63];
    free(a);
    return r;
}

int main(void)
{
    long sum = free_list(build_list(10));
    int r = use_array();
    static const char msg[] = "clean_c: done\n";
    if (write(1, msg, sizeof msg - 1) < 0)
        return 1;
    return sum == 45 && r == 78 ? 0 : 1;
}
