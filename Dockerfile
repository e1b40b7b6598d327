# The stakeledger CLI, API server and projection worker in one image.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain domain
COPY projections projections
COPY adapters adapters
COPY cli cli
COPY api api
COPY agents agents
RUN pip install --no-cache-dir .
