/*
 * The example `make example` traces: a tiny "address book" that loses two things: the second
 * contact (and with it the name it owns: one block definitely lost, one indirectly) and that
 * contact's e-mail string (definitely lost). heapgate reports each with the line that
 * allocated it, as valgrind does.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char *name;
    char *email;
} contact_t;

__attribute__((noinline)) static char *copy_string(const char *text) {
    size_t length = strlen(text) + 1;
    char *copy = malloc(length); /* alan's name (indirectly lost) and e-mail (definitely lost) */
    memcpy(copy, text, length);
    return copy;
}

__attribute__((noinline)) static contact_t *new_contact(const char *name, const char *email) {
    contact_t *contact = calloc(1, sizeof *contact); /* the second contact is leaked */
    contact->name = copy_string(name);
    contact->email = copy_string(email);
    return contact;
}

static void free_contact(contact_t *contact) {
    free(contact->name);
    free(contact->email);
    free(contact);
}

int main(void) {
    contact_t *ada = new_contact("Ada Lovelace", "ada@example.org");
    contact_t *alan = new_contact("Alan Turing", "alan@example.org");
    free_contact(ada);
    alan->email = NULL; /* bug: the email string is lost, and alan is never freed */
    const char message[] = "address book done\n";
    write(STDOUT_FILENO, message, sizeof message - 1);
    return 0;
}
