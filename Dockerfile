# canary-gate's container image: built with the Rust image's cargo, run from
# distroless/cc as a non-root user.
#
#   podman build -t canary-gate .
#   podman run --rm -p 8080:8080 -v ./tokens:/run/secrets/canary-gate/tokens:ro \
#     -e CANARY_GATE_TOKEN_FILE=/run/secrets/canary-gate/tokens \
#     -e PROMETHEUS_URL=http://prometheus:9090 canary-gate
#
# `serve` refuses to listen on 0.0.0.0 without tokens (README, Security), so
# the image starts only once it is given some (CANARY_GATE_TOKEN_FILE or
# CANARY_GATE_TOKENS), or `--insecure-no-auth` when a proxy in front checks
# access.

# Bookworm, so the binary links the glibc that distroless/cc-debian12 ships.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
# The whole tree (less what .dockerignore keeps out): Cargo.toml names the
# bench and the test binary, and cargo refuses a manifest whose targets are missing.
COPY . .
RUN cargo build --locked --release --bin canary-gate \
 && install -d /out/var/lib/canary-gate/verdicts

# distroless/cc rather than debian-slim: it holds what the binary needs and
# little else (glibc, libgcc_s, CA certificates for https stores, tzdata, an
# /etc/passwd with `nonroot`), with no shell or package manager for an
# intruder to use, at about a third of debian-slim's size. The `:debug` tag
# adds a busybox shell when one is needed to look around.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/canary-gate /usr/local/bin/canary-gate
# The shipped rule sets; a Kubernetes ConfigMap or a bind mount replaces them.
COPY rules/*.yaml /etc/canary-gate/rules/
COPY --from=build --chown=65532:65532 /out/var/lib/canary-gate /var/lib/canary-gate
# nonroot's uid and gid in distroless (numeric, so runAsNonRoot can check it).
USER 65532:65532
WORKDIR /var/lib/canary-gate
VOLUME ["/var/lib/canary-gate/verdicts"]
EXPOSE 8080
ENTRYPOINT ["canary-gate"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--rules-dir", "/etc/canary-gate/rules", "--log-dir", "/var/lib/canary-gate/verdicts"]
