# aam images. The build steps are scripts/build-dist.sh, which the test command also runs
# (outside Docker, on the test build), so what the images depend on is tested in CI.
#
#   docker build --target cpu  -t aam:cpu  .    # tract on the CPU (default target: the last stage)
#   docker build --target cuda -t aam:cuda .    # + ONNX Runtime GPU (CUDA, TensorRT providers)
#   docker run --rm -p 8000:8000 aam:cpu        # aam serve on port 8000 with the shipped model
#   docker run --rm -p 8000:8000 -v $PWD/my-export:/model aam:cpu serve --model /model --host 0.0.0.0
#   docker run --rm --gpus all -p 8000:8000 aam:cuda   # --backend ort --provider cuda

# ---- build: the CLI and the C library, laid out under /opt/aam and checked there ----
FROM rust:1.95-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN bash scripts/build-dist.sh --release /opt/aam

FROM build AS build-ort
RUN bash scripts/build-dist.sh --release --features aam-cli/ort,aam-capi/ort /opt/aam

# ---- cuda: ONNX Runtime GPU from its PyPI wheel (CUDA 13, cuDNN 9, as README says; TensorRT optional) ----
FROM nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04 AS cuda
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/ort && /opt/ort/bin/pip install --no-cache-dir onnxruntime-gpu==1.31.1 \
    && useradd --system --uid 10001 --home-dir /opt/aam --shell /usr/sbin/nologin aam
ENV ORT_DYLIB_PATH=/opt/ort/lib/python3.12/site-packages/onnxruntime/capi/libonnxruntime.so.1.31.1 \
    LD_LIBRARY_PATH=/opt/aam/lib \
    PATH=/opt/aam/bin:$PATH
COPY --from=build-ort /opt/aam /opt/aam
USER aam
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET /v2/health/ready HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["aam"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--backend", "ort", "--provider", "cuda", "--allow-fallback"]

# ---- cpu (default): slim, tract only, non-root ----
FROM debian:bookworm-slim AS cpu
RUN useradd --system --uid 10001 --home-dir /opt/aam --shell /usr/sbin/nologin aam
ENV LD_LIBRARY_PATH=/opt/aam/lib \
    PATH=/opt/aam/bin:$PATH
COPY --from=build /opt/aam /opt/aam
USER aam
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET /v2/health/ready HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["aam"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
