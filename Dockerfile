# The TritonTube application image: one image, every role (`tritontube worker | api | archiver
# | topics create`), chosen by the container's command. Used by docker-compose.kafka.yml.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg util-linux \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
RUN pip install --no-cache-dir -c constraints.txt . \
 && useradd --create-home --uid 10001 tritontube
USER tritontube
ENV TRITONTUBE_DATA_DIR=/home/tritontube/data \
    TRITONTUBE_WORKER__DATA_DIR=/home/tritontube/worker \
    TRITONTUBE_SEARCH__BACKEND=opensearch
ENTRYPOINT ["tritontube"]
