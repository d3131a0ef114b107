"""Map errors to responses: ``application/problem+json`` (RFC 9457) under /api, friendly pages elsewhere."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask import make_response
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from bff.payments.intents import NotBooked
from httpkit.errors import register as register_shared_handlers
from httpkit.problems import http_headers
from httpkit.problems import http_problem
from httpkit.problems import problem
from httpkit.queries import BadQuery
from plans.errors import PlanInputError
from plans.errors import UnknownVehicle

log = logging.getLogger(__name__)


def http_message(status: int) -> str:
    """A friendly, translated sentence for an HTTP error page."""
    messages = {
        400: _("That request could not be understood. Please go back and try again."),
        401: _("Please sign in to continue."),
        403: _("Your role does not give access to this page."),
        404: _("We could not find that page."),
        409: _("That action is not possible in the current state."),
        405: _("That action is not available here."),
        413: _("That upload is too large."),
        422: _("Please check what you entered: a value cannot be used as it is."),
        429: _("Too many attempts. Please wait a moment and try again."),
    }
    return messages.get(status, _("Something went wrong on our side. Please try again."))


def wants_json() -> bool:
    return request.path.startswith("/api/")


def filter_refused(exc: BadQuery) -> Any:
    """A list page asked for a filter it does not have, or a value it does not take: a 400 page that names
    the parameter and leads back to the whole list (never the list as if it had filtered)."""
    return render_template("error.html", status=400, message=_("That filter is not available on this list."),
                           errors=exc.errors, back=url_for(request.endpoint or "pwa.home", **(request.view_args or {})),
                           back_label=_("Show the whole list")), 400


def register_error_handlers(app: Flask) -> None:
    register_shared_handlers(app, page=filter_refused)

    @app.errorhandler(PlanInputError)
    def _invalid(exc: PlanInputError) -> Any:
        if wants_json():
            return problem(422, "Invalid input", "One or more fields are invalid.", exc.errors)
        return render_template("error.html", status=422, message=_("Please check the highlighted fields."),
                               errors=exc.errors), 422

    @app.errorhandler(UnknownVehicle)
    def _unknown(exc: UnknownVehicle) -> Any:
        if wants_json():
            return problem(404, "Not Found", "No such vehicle.")
        return render_template("error.html", status=404, message=_("We could not find that vehicle.")), 404

    @app.errorhandler(NotBooked)
    def _not_booked(exc: NotBooked) -> Any:
        # Stripe has the money, our books refused its entry: nothing changed here and ops have it in the audit log
        # (bff/payments/intents.py); the customer must not pay again, so not an error page
        if wants_json():
            return {"status": "processing", "payment_id": exc.payment_id}, 202
        return render_template("error.html", status=202, message=_(
            "Your payment was received and is being processed. There is no need to pay again."),
            back=url_for("payments.payment", application_id=exc.application_id),
            back_label=_("Back to the payment")), 202

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> Any:
        return render_template("error.html", status=400,
                               message=_("Your session expired. Please go back and try again.")), 400

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        status = exc.code or 500
        if wants_json():
            return http_problem(exc)
        response = make_response(render_template("error.html", status=status, message=http_message(status)), status)
        response.headers.extend(http_headers(exc))
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return problem(500, "Internal Server Error", "Something went wrong on our side; it has been logged.")
        return render_template("error.html", status=500,
                               message=_("Something went wrong on our side. Please try again.")), 500
