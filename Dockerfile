# tmapi-spiders in a container: `podman build -t tmapi-spiders .` (or docker), then
#   podman run --rm -e TMAPI_API_TOKEN -v "$PWD/out:/data" tmapi-spiders \
#     crawl image_search -a urls_file=/data/images.txt -O /data/products.jsonl
# The token comes only from the environment at run time: never a build argument or layer.
# Base image: override with --build-arg BASE=... where python:3.11-slim cannot be pulled.
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY tmapi_spiders ./tmapi_spiders
# The project with its storage and monitoring extras and the sandbox (-s TMAPI_SANDBOX=true, a
# crawl that costs nothing to check the image), then the sources are dropped.
RUN pip install ".[sandbox,s3,monitoring]" && rm -rf /src

# A non-root user; /data is where feeds, summaries and the answer store go (mount a volume).
RUN useradd --create-home --uid 10001 tmapi && mkdir -p /data && chown tmapi /data
USER tmapi
WORKDIR /data
ENV TMAPI_OUTPUT_DIR=/data/output TMAPI_CACHE_DIR=/data/tmapi-cache

ENTRYPOINT ["tmapi-spiders"]
CMD ["--help"]
