# One image for every Agentdeck process: web (gunicorn, gevent), worker (Celery), migrate.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .
RUN useradd --create-home --uid 10001 agentdeck \
    && mkdir -p /app/.agentdeck && chown -R agentdeck /app/.agentdeck
USER agentdeck

EXPOSE 8000
CMD ["gunicorn", "-c", "python:webapp.gunicorn_conf", "-k", "gevent", "-w", "2", \
     "-b", "0.0.0.0:8000", "webapp:create_app()"]
