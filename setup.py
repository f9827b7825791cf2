"""Build the optional C core, ``slaballoc._core``, from every ``csrc/*.c``.

The extension is optional: when it cannot be built (no compiler: ``CC=false pip
install .``) the install goes on and slaballoc runs its pure-Python modules,
which are the specification the C code follows.  Everything else about the
package is declared in pyproject.toml.
"""

import os
from glob import glob

from setuptools import Extension, setup

# Extra flags for a sanitizer build (see the Makefile's `sanitize` target).
extra_compile_args = ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=c11"]
extra_compile_args += os.environ.get("SLABALLOC_CFLAGS", "").split()
extra_link_args = os.environ.get("SLABALLOC_LDFLAGS", "").split()

setup(
    ext_modules=[
        Extension(
            "slaballoc._core",
            sources=sorted(glob("csrc/*.c")),
            depends=sorted(glob("csrc/*.h")),
            include_dirs=["csrc"],
            extra_compile_args=extra_compile_args,
            extra_link_args=extra_link_args,
            # SLABALLOC_REQUIRE_CORE=1 (the Makefile) makes a failed build an error,
            # instead of a silent fallback to Python or to a stale build.
            optional=os.environ.get("SLABALLOC_REQUIRE_CORE", "") in ("", "0"),
        )
    ]
)
