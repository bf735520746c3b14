# syntax=docker/dockerfile:1
# Image of the ticketing site (needs BuildKit, the default builder since Docker 23).
#   docker build -t ticketing:TAG .                 production image (the last stage, `runtime`)
#   docker build --target dev -t ticketing:dev .    the same plus the paypal-simulator binary
# The binary applies pending migrations when it starts (`serve`); `migrate` and `seed` are the
# other commands. Settings come from the environment (see .env.example); the defaults below
# fit the container: production mode, listening on 0.0.0.0:8443.

FROM rust:1-bookworm AS builder
# Unpinned on purpose: Debian security updates replace these versions within a release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# .dockerignore keeps target/, .git, secrets and certificates out of the context. The cache
# mounts keep the crates.io downloads and the compiled dependencies between builds, so a
# change to the app's own code rebuilds only the app's crate.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin ticketing \
 && mkdir -p /out \
 && cp target/release/ticketing /out/ticketing

# Built only for the `dev` target (docker-compose.dev.yml).
FROM builder AS simulator-builder
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin paypal-simulator \
 && cp target/release/paypal-simulator /out/paypal-simulator

FROM debian:bookworm-slim AS runtime-base
# libpq5 for Diesel, ca-certificates for outgoing TLS (PayPal, SMTP), curl for HEALTHCHECK.
# Unpinned on purpose, as above.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 ticketing \
 && useradd --system --uid 10001 --gid ticketing --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin ticketing
WORKDIR /app
# Everything under /app belongs to root and is read-only for the app's user.
COPY --from=builder /out/ticketing /app/ticketing
COPY templates /app/templates
COPY static /app/static
COPY config/cloudflare-ips.txt config/paypal-webhook-ca.pem /app/config/
ENV APP_ENV=production \
    BIND_ADDRESS=0.0.0.0 \
    PORT=8443 \
    TEMPLATE_DIR=/app/templates \
    STATIC_DIR=/app/static
USER 10001:10001
EXPOSE 8443
# HEALTHCHECK_URL: https://127.0.0.1:8443/healthz when the app serves TLS (curl -k: the Origin
# CA certificate is not for 127.0.0.1). HEALTHCHECK_CLIENT_CERT / HEALTHCHECK_CLIENT_KEY: a
# client certificate for when the app requires one (authenticated origin pulls).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/bin/sh", "-c", "curl -fsk --max-time 4 -o /dev/null ${HEALTHCHECK_CLIENT_CERT:+--cert \"$HEALTHCHECK_CLIENT_CERT\"} ${HEALTHCHECK_CLIENT_KEY:+--key \"$HEALTHCHECK_CLIENT_KEY\"} \"${HEALTHCHECK_URL:-http://127.0.0.1:$PORT/healthz}\" || exit 1"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/ticketing"]
CMD ["serve"]

# Development image: the production one plus /app/paypal-simulator.
FROM runtime-base AS dev
COPY --from=simulator-builder /out/paypal-simulator /app/paypal-simulator

# Production image (the default target).
FROM runtime-base AS runtime
