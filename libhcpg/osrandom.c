/* osrandom.c - random bytes from the OS (see osrandom.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#if defined(__linux__) && defined(__has_include)
#if __has_include(<sys/random.h>)
#include <sys/random.h>
#define HC_HAVE_GETRANDOM 1
#endif
#endif

#include "osrandom.h"

int hc__os_random(void *buf, size_t n)
{
#ifdef HC_HAVE_GETRANDOM
    ssize_t got;
    do
        got = getrandom(buf, n, GRND_NONBLOCK);
    while (got < 0 && errno == EINTR);
    if (got == (ssize_t)n)
        return 0;
#endif
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < n) {
        ssize_t r = read(fd, (char *)buf + done, n - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        done += (size_t)r;
    }
    close(fd);
    return done == n ? 0 : -1;
}
