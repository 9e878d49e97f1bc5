"""CPU features for cyconv._cpu, as the compiler's runtime reports them (with the operating system's
support for the wider registers): gcc's and clang's __builtin_cpu_supports on x86-64; on other
platforms and compilers every feature reads as absent, so only the baseline variant is used."""

cdef extern from *:
    """
    #if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
      #define CYCONV_HAS(feature) (__builtin_cpu_init(), __builtin_cpu_supports(feature) != 0)
    #else
      #define CYCONV_HAS(feature) 0
    #endif
    static int cyconv_has_avx2(void) { return CYCONV_HAS("avx2"); }
    static int cyconv_has_fma(void) { return CYCONV_HAS("fma"); }
    static int cyconv_has_avx512f(void) { return CYCONV_HAS("avx512f"); }
    static int cyconv_has_avx512bw(void) { return CYCONV_HAS("avx512bw"); }
    static int cyconv_has_avx512dq(void) { return CYCONV_HAS("avx512dq"); }
    static int cyconv_has_avx512vl(void) { return CYCONV_HAS("avx512vl"); }
    """
    bint cyconv_has_avx2()
    bint cyconv_has_fma()
    bint cyconv_has_avx512f()
    bint cyconv_has_avx512bw()
    bint cyconv_has_avx512dq()
    bint cyconv_has_avx512vl()


def features():
    """{feature name: whether this CPU and OS support it} for the features cyconv._cpu uses."""
    return {
        "avx2": cyconv_has_avx2(),
        "fma": cyconv_has_fma(),
        "avx512f": cyconv_has_avx512f(),
        "avx512bw": cyconv_has_avx512bw(),
        "avx512dq": cyconv_has_avx512dq(),
        "avx512vl": cyconv_has_avx512vl(),
    }
