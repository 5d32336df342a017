import { createSchema, createYoga } from "graphql-yoga";

// The dashboard API's mount point; its schema grows with the dashboard issue.
export function createDashboardGraphQL() {
  return createYoga({
    graphqlEndpoint: "/graphql",
    maskedErrors: true,
    landingPage: false,
    schema: createSchema({
      typeDefs: /* GraphQL */ `
        type Query {
          "The platform's name, to check the dashboard API is reachable."
          platform: String!
        }
      `,
      resolvers: { Query: { platform: () => "SentX" } },
    }),
  });
}
