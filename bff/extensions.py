"""Flask extensions, created once and bound in ``create_app``."""

from flask_babel import Babel
from flask_htmx import HTMX
from flask_wtf.csrf import CSRFProtect

babel = Babel()
csrf = CSRFProtect()
htmx = HTMX()
