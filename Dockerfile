# Build with dev dependencies, run with production ones only.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN npx tsc -p tsconfig.json
# The runtime image serves a real Marathon only: the demo (fake Marathon, sample backends) stays here.
RUN mkdir -p /out && cp -r dist/src /out/src && rm -rf /out/src/demo

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /out/src ./dist/src
# Binding 80 and 443 as a non-root user needs the capability on node itself.
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends libcap2-bin curl \
  && setcap cap_net_bind_service=+ep "$(readlink -f "$(command -v node)")" \
  && apt-get purge -y libcap2-bin && rm -rf /var/lib/apt/lists/*
USER node
EXPOSE 80 443 9090 9091 10000-10100
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:${TURBINE_ADMIN_PORT:-9090}/_haproxy_health_check || exit 1
# Node is PID 1 and handles SIGTERM itself: report unhealthy, serve for --shutdown-grace, stop accepting, drain, exit 0.
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["--help"]
