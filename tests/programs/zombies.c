/* A program that leaves zombies unless its container has an init process.

   Run behind `baton-worker exec --` in a container (tests/test_worker_runtime.py):
   it reads its input to the end, then forks a child that forks ORPHANS grandchildren
   and exits at once. The grandchildren are orphaned: the kernel gives them to the
   container's PID 1. They exit 200 ms later; only PID 1 can reap them. Without an
   init process PID 1 is baton-worker, which waits for its own child only, so they
   stay zombies as long as the task lives; with ECS's initProcessEnabled (podman's
   --init) PID 1 is an init that reaps them. After a second the program counts the
   processes in state Z in its PID namespace and prints, as its output:

     {"zombies": <count>, "orphans": <ORPHANS>, "pid1": "<PID 1's command name>"}

   C and libc only: the worker image has no shell and no interpreter. */

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ORPHANS 5

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0) {
    }
}

/* Processes in state Z: the field after the command's closing parenthesis. */
static int zombies(void) {
    DIR *proc = opendir("/proc");
    struct dirent *entry;
    int count = 0;
    if (proc == NULL) {
        return -1;
    }
    while ((entry = readdir(proc)) != NULL) {
        char path[300], stat[1024];
        FILE *file;
        size_t n;
        char *close;
        if (!isdigit((unsigned char)entry->d_name[0])) {
            continue;
        }
        snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
        file = fopen(path, "r");
        if (file == NULL) {
            continue;
        }
        n = fread(stat, 1, sizeof stat - 1, file);
        fclose(file);
        stat[n] = '\0';
        close = strrchr(stat, ')');
        if (close != NULL && close[1] == ' ' && close[2] == 'Z') {
            count++;
        }
    }
    closedir(proc);
    return count;
}

int main(void) {
    char buffer[65536], pid1[64] = "?";
    pid_t child;
    FILE *comm;
    while (fread(buffer, 1, sizeof buffer, stdin) > 0) {
    }
    child = fork();
    if (child < 0) {
        perror("fork");
        return 1;
    }
    if (child == 0) {
        for (int i = 0; i < ORPHANS; i++) {
            if (fork() == 0) {
                sleep_ms(200);
                _exit(0);
            }
        }
        _exit(0); /* the grandchildren are orphans from here on */
    }
    waitpid(child, NULL, 0);
    sleep_ms(1200);
    comm = fopen("/proc/1/comm", "r");
    if (comm != NULL) {
        if (fgets(pid1, sizeof pid1, comm) != NULL) {
            pid1[strcspn(pid1, "\n")] = '\0';
        }
        fclose(comm);
    }
    fprintf(stderr, "zombies: %d of %d orphans left unreaped; PID 1 is %s\n", zombies(), ORPHANS, pid1);
    printf("{\"orphans\":%d,\"pid1\":\"%s\",\"zombies\":%d}", ORPHANS, pid1, zombies());
    return 0;
}
