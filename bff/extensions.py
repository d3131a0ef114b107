"""Flask extensions, created once and bound in ``create_app``."""

from flask_babel import Babel
from flask_htmx import HTMX
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

babel = Babel()
csrf = CSRFProtect()
htmx = HTMX()
#: Storage: Redis when REDIS_URL is set (several workers share the counts), memory otherwise.
limiter = Limiter(key_func=get_remote_address, default_limits=[])
