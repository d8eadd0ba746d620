"""The aam wheel: the package with the libaam that cargo built inside it.

`scripts/build-wheel.sh` copies libaam.so into src/aam/ of a staging copy of this folder
and builds the wheel from there. A wheel that carries a native library is tagged for this
platform (not `any`); the package calls libaam through ctypes, so it suits every Python 3
(`py3-none-<platform>`). Installed from source without libaam.so, the package loads the
library named by AAM_LIBRARY instead.
"""

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel  # setuptools >= 70.1
from setuptools.dist import Distribution


class BinaryDistribution(Distribution):
    """A distribution with a native library, hence a platform wheel."""

    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    """Tags the wheel py3-none-<platform>: ctypes, no CPython extension."""

    def get_tag(self):
        return "py3", "none", super().get_tag()[2]


setup(distclass=BinaryDistribution, cmdclass={"bdist_wheel": PlatformWheel},
      package_data={"aam": ["libaam.so"]})
