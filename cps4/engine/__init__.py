from .hooks import *  # noqa: F401,F403
from .runner import TeacherStudentValLoop  # noqa: F401
