# srvgate: multi-stage build; the runtime image holds production dependencies only.
# Build:  docker build -t srvgate .
# Run:    docker run --rm -p 8080:8080 -v $PWD/gateway.yaml:/etc/srvgate/gateway.yaml:ro srvgate
# test/e2e/package.test.ts replays these steps in clean folders (no Docker engine needed).

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
RUN npm ci --ignore-scripts --no-audit --no-fund
RUN npx tsc -p tsconfig.json

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The configuration schema the loader validates with (src/config/validate.ts reads it beside dist/).
COPY config/gateway.schema.json ./config/
COPY config/gateway.yaml /etc/srvgate/gateway.yaml
RUN mkdir -p /var/lib/srvgate && chown node:node /var/lib/srvgate
USER node
EXPOSE 8080 9901
# The admin listener answers /healthz; node is PID 1 and handles SIGTERM itself (drain, then exit 0).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s CMD ["node", "-e", "fetch('http://127.0.0.1:9901/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/main.js"]
CMD ["run", "-c", "/etc/srvgate/gateway.yaml"]
