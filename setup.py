"""Build pynn: the C kernels in csrc/ as static libraries, one Cython extension per kernel
family in pynn/_ext/, OpenMP when the compiler has it.

Environment switches:
  PYNN_OPENMP=0|1      force OpenMP off / on (default: probe the compiler)
  PYNN_CYTHON_DEBUG=1  build Cython with bounds and wraparound checks on
No -march=native: ISA flags go only on csrc/*_avx2.c and csrc/*_avx512.c, whose code runs
only after runtime CPU detection chose it.
"""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
BASE_CFLAGS = ["-O3", "-std=gnu99", "-fno-math-errno", "-fno-trapping-math", "-Wall",
               "-Wno-unknown-pragmas"]
ISA_CFLAGS = {
    "avx2": ["-mavx2", "-mfma"],
    "avx512": ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mfma"],
}
OMP_PROBE = r"""
#include <omp.h>
#include <stdio.h>
int main(void) { int n = 0;
#pragma omp parallel reduction(+:n)
  n += 1;
  printf("%d\n", n > 0); return 0; }
"""


def _compiler():
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return cc.split()


def openmp_flags():
    """The compiler's OpenMP flags, [] when it has none or PYNN_OPENMP=0."""
    want = os.environ.get("PYNN_OPENMP", "").strip()
    if want == "0":
        print("pynn build: OpenMP disabled by PYNN_OPENMP=0, building serial")
        return []
    flags = ["-fopenmp"]
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(OMP_PROBE)
        exe = os.path.join(tmp, "probe")
        r = subprocess.run(_compiler() + flags + [src, "-o", exe], capture_output=True)
        ok = r.returncode == 0 and subprocess.run([exe], capture_output=True).returncode == 0
    except OSError:
        ok = False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if ok:
        print("pynn build: OpenMP found (-fopenmp)")
        return flags
    if want == "1":
        sys.exit("pynn build: PYNN_OPENMP=1 but the compiler cannot build OpenMP code")
    print("pynn build: the compiler has no OpenMP, building serial")
    return []


OMP = openmp_flags()
CFLAGS = BASE_CFLAGS + OMP
macros = [("PYNN_CFLAGS", '"%s"' % " ".join(CFLAGS))]

csrc = sorted(glob.glob("csrc/*.c"))
isa_src = {isa: [s for s in csrc if s.endswith("_%s.c" % isa)] for isa in ISA_CFLAGS}
core_src = [s for s in csrc if not any(s in v for v in isa_src.values())]
# every object depends on every header: a changed header recompiles what includes it
obj_deps = {"": sorted(glob.glob("csrc/*.h"))}
libraries = [("pynn_core", {"sources": core_src, "include_dirs": ["csrc"], "macros": macros,
                            "cflags": CFLAGS, "obj_deps": obj_deps})]
for isa, srcs in isa_src.items():
    if srcs:
        libraries.append(("pynn_" + isa, {"sources": srcs, "include_dirs": ["csrc"],
                                          "cflags": CFLAGS + ISA_CFLAGS[isa],
                                          "obj_deps": obj_deps}))
lib_names = [name for name, _ in libraries]

debug = os.environ.get("PYNN_CYTHON_DEBUG", "") == "1"
directives = {"language_level": 3, "boundscheck": debug, "wraparound": debug,
              "cdivision": not debug, "initializedcheck": debug}
extensions = [
    Extension("pynn._ext." + os.path.splitext(os.path.basename(p))[0], [p],
              # relink when any kernel source changes (the static libraries are rebuilt)
              depends=csrc + sorted(glob.glob("csrc/*.h")) + sorted(glob.glob("pynn/_ext/*.pxd")),
              include_dirs=["csrc", np.get_include()],
              define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
              # build_ext appends the same list again, so cross references resolve either way
              libraries=lib_names,
              extra_compile_args=["-O3", "-Wno-unused-function", "-Wno-unreachable-code"] + OMP,
              extra_link_args=OMP)
    for p in sorted(glob.glob("pynn/_ext/*.pyx"))
]



class BuildExt(build_ext):
    """build_ext that first builds the csrc/ static libraries (also for --inplace)."""

    def run(self):
        if self.distribution.has_c_libraries():
            self.run_command("build_clib")
        super().run()


setup(
    cmdclass={"build_ext": BuildExt},
    libraries=libraries,
    ext_modules=cythonize(extensions, compiler_directives=directives,
                          compile_time_env={"PYNN_CYTHON_DEBUG": debug}),
)
