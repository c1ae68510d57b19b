import { ApiException, HttpMethod, KubernetesObjectApi, type KubeConfig, type KubernetesObject, type ResponseContext } from '@kubernetes/client-node';

/** An object as JSON, whoever made it (kubernetes-models here): what a create needs to find its path. */
export interface ObjectJson {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
}

/** The answer of a create that nobody reads. */
const UNREAD = 'codex-k8s:unread';

/**
 * The client's generic object API, whose create sends an object's JSON as it is and leaves the
 * answer unread; the request itself (its path from discovery, authentication, middleware, HTTP
 * library) stays the client's. Its own create serializes by its models' field names, so plain JSON
 * lost the fields its models name otherwise (a LimitRange's `default` is `_default` there: found by
 * a review), and turning each object into the client's model, the model back into JSON and the
 * answer into a model again took about a seventh of the worker's CPU in a launch burst.
 */
export class JsonObjectApi extends KubernetesObjectApi {
  static fromConfig(kc: KubeConfig): JsonObjectApi {
    const api = kc.makeApiClient(JsonObjectApi);
    api.setDefaultNamespace(kc);
    return api;
  }

  /** Creates `object` from its JSON; fails with the client's ApiException (its code, body and headers) as its create does. */
  async createAsIs(object: ObjectJson): Promise<void> {
    const context = this.configuration.baseServer.makeRequestContext(await this.specUriPath(object as KubernetesObject, 'create'), HttpMethod.POST);
    context.setHeaderParam('Accept', 'application/json, */*;q=0.8');
    context.setHeaderParam('Content-Type', 'application/json');
    context.setBody(JSON.stringify(object));
    await this.requestPromise(context, UNREAD);
  }

  protected override async processResponse<T extends KubernetesObject>(response: ResponseContext, type?: string): Promise<T> {
    if (type !== UNREAD) return super.processResponse(response, type);
    if (response.httpStatusCode >= 200 && response.httpStatusCode <= 299) {
      await response.body.text(); // read whole, so an HTTP library that streams lets the connection go
      return {} as T;
    }
    throw new ApiException(response.httpStatusCode, 'Unsuccessful HTTP Request', await response.getBodyAsAny(), response.headers);
  }
}
