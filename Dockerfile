# One image, every role: `coldchain api | ingest | alerts | up | migrate`.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/coldchain
COPY pyproject.toml README.md ./
COPY app ./app
COPY ingest ./ingest
COPY alerts ./alerts
COPY simulators ./simulators
COPY migrations ./migrations
RUN pip install . && useradd --system --uid 10001 coldchain
USER coldchain
EXPOSE 8000
ENTRYPOINT ["coldchain"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
