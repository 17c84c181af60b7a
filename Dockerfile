# syntax=docker/dockerfile:1

# Build: compile TypeScript and better-sqlite3's native addon, then drop dev dependencies.
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci
COPY proto ./proto
COPY gen ./gen
COPY src ./src
RUN npm run build && npm prune --omit=dev

# Runtime: Node and the compiled app only, as the unprivileged node user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    TALLY_HOST=0.0.0.0 \
    TALLY_PORT=8080 \
    TALLY_DB=/data/aggregator.db
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.TALLY_PORT}/health`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM drains the queue and closes the database; give it the 10 s the server needs.
STOPSIGNAL SIGTERM
CMD ["node", "--max-semi-space-size=4", "--no-allocation-site-pretenuring", "dist/src/app/main.js"]
