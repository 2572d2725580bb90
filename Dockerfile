# Rampart: one static binary (pure-Go SQLite, no cgo) on a distroless base.
# docker compose builds this image for the server, worker, migrate and simulator.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
ENV GOTOOLCHAIN=local CGO_ENABLED=0
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -trimpath -ldflags="-s -w" -o /out/rampart ./cmd/rampart

FROM gcr.io/distroless/static-debian12:nonroot
WORKDIR /app
COPY --from=build /out/rampart /app/bin/rampart
COPY examples /app/examples
USER nonroot:nonroot
ENTRYPOINT ["/app/bin/rampart"]
CMD ["--help"]
