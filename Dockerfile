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
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/static ./static
COPY package.json ./
USER node
EXPOSE 8080
ENTRYPOINT ["node", "dist/src/cli/index.js"]
CMD ["serve"]
