"""The one error a webhook handler raises: an HTTP status and a message that says what is wrong."""

from __future__ import annotations


class WebhookRejected(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
