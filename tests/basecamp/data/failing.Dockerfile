FROM annapurna-lab/test-busybox:latest AS builder
WORKDIR /app
COPY a.txt ./
RUN echo "about to fail" && echo "on stderr" >&2 && exit 3

FROM annapurna-lab/test-busybox:latest AS other
RUN echo slow other && sleep 5

FROM annapurna-lab/test-busybox:latest
COPY --from=builder /app/a.txt /a.txt
COPY --from=other /bin/sh /x
