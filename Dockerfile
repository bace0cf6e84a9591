# Image for the web, worker and beat services of docker-compose.yml.
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH="/opt/venv/bin:$PATH"

RUN pip install --no-cache-dir uv \
 && apt-get update && apt-get install -y --no-install-recommends gettext \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --uid 1000 app

WORKDIR /app
COPY pyproject.toml uv.lock .python-version ./
RUN uv sync --frozen --no-dev --no-install-project

COPY . .
# Volumes mount on /app/var (beat) and /app/var/media (web, worker): both exist here and
# belong to the app user, so new volumes start out writable by it rather than by root.
RUN DJANGO_SETTINGS_MODULE=config.settings.production SECRET_KEY=build-only \
    python manage.py collectstatic --noinput \
 && mkdir -p /app/var/media && chown -R app /app/var

USER app
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "600"]
