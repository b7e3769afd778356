from .hooks import *  # noqa: F401,F403
from .optimizers import MixedPrecisionOptimWrapper  # noqa: F401
from .runner import TeacherStudentValLoop  # noqa: F401
