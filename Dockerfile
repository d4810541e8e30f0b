# syntax=docker/dockerfile:1
#
# Ostwerk container image.
#
#   docker build -t ostwerk .
#   docker run --rm -p 8080:8080 -e OSTWERK_JWT_SECRET=... -e DATABASE_URL=postgres://... ostwerk
#
# Needs BuildKit (the default builder since Docker 23) for the cache mounts below.
#
# Base images are pinned by digest, so a rebuild uses the very bytes that
# were tested, not whatever the tag points to that day. To move to newer
# images (security updates), resolve the tags and update both lines:
#   docker buildx imagetools inspect rust:1.95-bookworm     # "Digest: sha256:…"
#   docker buildx imagetools inspect debian:bookworm-slim
# or build once with another image: --build-arg RUST_IMAGE=rust:1-bookworm.
# Keep the builder and runtime on the same Debian release (glibc).

ARG RUST_IMAGE=rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1
ARG RUNTIME_IMAGE=debian:bookworm-slim@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251

# ---------------------------------------------------------------------------
# Build stage
# ---------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
WORKDIR /build

# Only what the build needs: the workspace manifest and lock file, the
# `migration` workspace member, the service sources and the OpenAPI
# documents. tests/, README.md and .ci/ are deliberately left out so that
# editing them does not invalidate this layer.
COPY Cargo.toml Cargo.lock ./
COPY migrations/ migrations/
COPY src/ src/
COPY openapi/ openapi/
# src/openapi.rs includes docs/openapi-intro.md at compile time.
COPY docs/ docs/

# The cache mounts keep the crates.io registry and target/ between builds,
# so a source change rebuilds only the workspace crates. target/ lives
# only in the cache, so copy the binary out in the same RUN step.
RUN --mount=type=cache,id=ostwerk-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=ostwerk-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=ostwerk-target,target=/build/target,sharing=locked \
    cargo build --release --locked --bin ostwerk \
 && install -D -m 0755 target/release/ostwerk /out/ostwerk

# ---------------------------------------------------------------------------
# Runtime stage
# ---------------------------------------------------------------------------
# Same Debian release as the builder, so the glibc the binary was linked
# against is present. TLS is rustls, so OpenSSL isn't needed; the CA bundle
# is, for outbound HTTPS (for example, fetching a JWKS).
FROM ${RUNTIME_IMAGE} AS runtime

LABEL org.opencontainers.image.title="ostwerk" \
      org.opencontainers.image.description="Back office API of a district employment-development office" \
      org.opencontainers.image.licenses="EUPL-1.2"

# ca-certificates: outbound TLS. curl: only for the HEALTHCHECK below.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

# Unprivileged user with a fixed numeric id (so that Kubernetes'
# runAsNonRoot can verify it), owning the working directory, which is
# also where a relative SQLite DATABASE_URL would put its files.
RUN groupadd --system --gid 10001 ostwerk \
 && useradd --system --uid 10001 --gid ostwerk \
            --home-dir /var/lib/ostwerk --no-create-home \
            --shell /usr/sbin/nologin ostwerk \
 && install -d -o ostwerk -g ostwerk -m 0750 /var/lib/ostwerk

COPY --from=builder /out/ostwerk /usr/local/bin/ostwerk

WORKDIR /var/lib/ostwerk
USER 10001:10001

ENV OSTWERK_ADDR=0.0.0.0:8080
EXPOSE 8080

# Probes readiness (/readyz), not just liveness, so the container shows as
# unhealthy whenever the service reports it can't take traffic. The URL is
# fixed: if you change the port in OSTWERK_ADDR, override the healthcheck too.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["curl", "-fsS", "--max-time", "4", "http://127.0.0.1:8080/readyz"]

# Exec form: ostwerk runs as PID 1 and gets SIGTERM itself (it drains for
# up to 30 s, so give `docker stop` / Kubernetes a grace period above that).
STOPSIGNAL SIGTERM
ENTRYPOINT ["ostwerk"]
CMD ["serve"]
