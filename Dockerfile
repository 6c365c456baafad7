# One image, every role: `coldchain api | ingest | alerts | up | migrate`.
# The base is pinned to a patch release and a Debian release; bump it on purpose (and pin the
# digest too where your registry policy asks for it: `docker buildx imagetools inspect <image>`).
FROM python:3.11.14-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /srv/coldchain

# The dependencies, from pyproject.toml alone, in a layer of their own: a change to the source
# reuses it. Not the `embedded` extra: containers use the PostgreSQL and broker they are given.
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY README.md ./
COPY app ./app
COPY ingest ./ingest
COPY alerts ./alerts
COPY simulators ./simulators
COPY migrations ./migrations
RUN pip install --no-deps . && useradd --system --uid 10001 coldchain
USER coldchain
EXPOSE 8000

# Healthy when the role answers on its own port: the API's /readyz (503 while the database is
# unreachable); a worker sets COLDCHAIN_HEALTHCHECK_URL to its /metrics (compose.yaml does).
ENV COLDCHAIN_HEALTHCHECK_URL=http://127.0.0.1:8000/readyz
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['COLDCHAIN_HEALTHCHECK_URL'], timeout=4)"]

ENTRYPOINT ["coldchain"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
