# The pipeline image: one image, several roles (worker, sink, simulator, migrations).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md settings.py ./
COPY models ./models
COPY streams ./streams
COPY sinks ./sinks
COPY simulator ./simulator
COPY report ./report
COPY grafana ./grafana
COPY sgi ./sgi
RUN pip install --no-cache-dir . && useradd --system --uid 10001 sgi && mkdir -p /var/lib/sgi && chown sgi /var/lib/sgi
USER sgi
ENV SGI_WORKER_DATA_DIR=/var/lib/sgi/faust
ENTRYPOINT ["sgi"]
CMD ["--help"]
