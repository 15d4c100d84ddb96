FROM annapurna-lab/test-busybox:latest AS builder
ARG GREETING=hello
WORKDIR /app
COPY a.txt ./
RUN echo "building $GREETING" && sleep 1 && echo line2 > /app/out.txt
RUN for i in 1 2 3; do echo "tick $i"; sleep 0.3; done; cat a.txt >> /app/out.txt

FROM annapurna-lab/test-busybox:latest AS other
RUN echo other stage && sleep 1.5 && echo o > /o.txt

FROM annapurna-lab/test-busybox:latest AS runtime
ENV APP=/app
COPY --from=builder /app/out.txt /app/out.txt
COPY --from=other /o.txt /o.txt
CMD ["cat", "/app/out.txt"]
