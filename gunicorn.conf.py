"""gunicorn settings for HoSo, read from the working directory (``make run`` passes ``--config``).

The app enforces its own limits (``app/web/http.py``: request line 4,094 bytes, header field 8,190
bytes, 100 header fields) and answers them with problem documents and its security headers.
gunicorn's limits sit above those, so they trip only on requests far beyond them; even then, and
for anything else gunicorn refuses to parse, its worker answers a problem document too.
"""

worker_class = "app.web.gunicorn_worker.ProblemThreadWorker"  # gunicorn's gthread worker (``--threads``)
limit_request_line = 8190  # gunicorn's maximum; the app's limit is 4,094
limit_request_field_size = 16380  # twice the app's 8,190
limit_request_fields = 200  # twice the app's 100
