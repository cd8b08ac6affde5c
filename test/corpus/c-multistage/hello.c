/* A greeter: prints its version, or greets its arguments and the user it runs as. */
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define VERSION "1.0.0"

int main(int argc, char **argv) {
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("hello %s\n", VERSION);
		return 0;
	}
	struct passwd *pw = getpwuid(getuid());
	printf("hello from %s", pw ? pw->pw_name : "?");
	for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
	printf("\n");
	return 0;
}
