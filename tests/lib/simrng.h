/* simrng.h - the deterministic random numbers of the test generators (callgen, pbxsim): splitmix64, one stream per program. */
#ifndef CP_TEST_SIMRNG_H
#define CP_TEST_SIMRNG_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

/* The generator's state: a program seeds it by assignment (same seed, same calls). */
static uint64_t rng_state;

static inline uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static inline int64_t between(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

static inline bool chance(int pct)
{
    return (int)(rnd() % 100) < pct;
}

/* Uniform in (0, 1). */
static inline double uniform01(void)
{
    return ((double)(rnd() >> 11) + 0.5) / 9007199254740992.0;
}

/* Exponentially distributed, with this mean. */
static inline int64_t expo_ms(double mean_ms)
{
    return (int64_t)(-log(uniform01()) * mean_ms);
}

#endif
