# syntax=docker/dockerfile:1
# The socket lab in one image: every role is a single binary on PATH.
#
#   docker build -t socket-lab .
#   docker run --rm -p 8080:8080 socket-lab                    # echo server
#   docker run --rm -p 8080:8080 socket-lab chat_server        # chat server
#   docker run --rm -p 8080:8080 -p 8081:8081 -e WEB_PORT=8081 socket-lab chat_server  # and its web page
#   docker run --rm --network host socket-lab client "hi"      # a client, from the image
#
# Stage 1 compiles the roles with the exact Deno the project pins (the build can download
# the denort runtime); stage 2 keeps only the binaries on Deno's distroless base: no shell,
# no package manager, no sources.

FROM denoland/deno:2.9.6 AS build
WORKDIR /src
COPY deno.json deno.lock ./
COPY server.ts client.ts chat_server.ts chat_client.ts ./
COPY lib/ lib/
COPY web/ web/
COPY tools/ tools/
RUN deno task compile

FROM denoland/deno:distroless-2.9.6
COPY --from=build /src/dist/ /app/bin/
ENV PATH=/app/bin:/usr/local/bin:/usr/bin:/bin \
    SERVER_HOST=0.0.0.0 \
    SERVER_PORT=8080 \
    LOG_LEVEL=info
WORKDIR /app
# The uid of the deno user in Deno's images; numeric, so no /etc/passwd entry is needed.
USER 1993:1993
EXPOSE 8080
# Our own client, without a shell: does the server accept connections on its port?
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
  CMD ["client", "--check", "--host", "127.0.0.1", "--timeout", "3"]
# Exec form, so the role is PID 1 and gets SIGTERM from `docker stop` (it exits 0).
ENTRYPOINT []
CMD ["server"]
