# switchyard image: `docker build -t switchyard:dev .`
#
# One image for every mode: `controller` (the default command), `run`,
# `check`, `crd`, and `demo-backend` (the e2e's demo backends).

# ---- build ------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /build

# 1. Dependencies only, so editing src/ does not rebuild them: build the real
#    Cargo.toml/Cargo.lock against placeholder sources. (If Cargo.toml gains
#    a build.rs or explicit [[test]]/[[bench]] targets, add placeholders for
#    them here too.)
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src \
 && echo '//! Placeholder for the dependency layer.' > src/lib.rs \
 && printf '//! Placeholder.\nfn main() {}\n' > src/main.rs \
 && cargo build --release --locked \
 && rm -rf src \
      target/release/switchyard* \
      target/release/deps/switchyard-* \
      target/release/deps/libswitchyard-* \
      target/release/.fingerprint/switchyard-*

# 2. The crate itself. examples/ is read at compile time
#    (include_str!("../examples/demo.yaml")), so it must be here too.
COPY src ./src
COPY examples ./examples
RUN cargo build --release --locked \
 && cp target/release/switchyard /switchyard

# ---- run --------------------------------------------------------------------
# distroless/cc: glibc + libgcc and nothing else (no shell); :nonroot runs as
# uid/gid 65532, matching the manifests' securityContext.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="switchyard" \
      org.opencontainers.image.description="A Kubernetes ingress controller and HTTP load balancer" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /switchyard /switchyard
USER 65532:65532
# 8080: the proxy (--listen); 9901: admin /healthz /readyz /routes (--admin).
EXPOSE 8080 9901
ENTRYPOINT ["/switchyard"]
CMD ["controller"]
