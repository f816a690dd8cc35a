FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY migrations ./migrations
COPY static ./static
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
# A container's own loopback is unreachable through a published port: listen on the container's
# interfaces in every role, local mode (`serve` with no DATABASE_URL) included.
ENV HOST=0.0.0.0
# Rendering (js_rendering) drives Debian's Chromium. Docker's default seccomp profile denies the
# user namespaces Chromium's own sandbox needs, so the container is the boundary around it; under a
# profile that allows them, set OMNISCRAPE_BROWSER_SANDBOX=true (docs/browser.md).
RUN apt-get update && apt-get install -y --no-install-recommends chromium fonts-liberation \
  && rm -rf /var/lib/apt/lists/*
ENV OMNISCRAPE_BROWSER_SANDBOX=false
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/static ./static
COPY package.json ./
USER node
EXPOSE 8080
ENTRYPOINT ["node", "dist/src/cli/index.js"]
CMD ["serve"]
