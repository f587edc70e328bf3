# One image for web, worker and beat (see docker-compose.yml).
# /data may hold the SQLite database (password hashes, sessions) and the secret key: its user's
# alone (0700). A new named volume takes that mode from the image; settings tighten an old one.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    TAGLEDGER_DATA_DIR=/data DOCKER_CONFIG=/docker-config
WORKDIR /app

COPY pyproject.toml README.md ./
COPY tagledger tagledger
COPY catalog catalog
COPY history history
RUN pip install --no-cache-dir .

COPY manage.py ./
COPY templates templates
COPY static static
RUN TAGLEDGER_SECRET_KEY=build-only python manage.py collectstatic --no-input \
    && useradd --system --home /data tagledger && mkdir -p /data /docker-config \
    && chown tagledger /data && chmod 700 /data
USER tagledger
EXPOSE 8000
CMD ["gunicorn", "-c", "python:tagledger.gunicorn", "tagledger.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
