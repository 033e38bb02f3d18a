"""The API's request and response models, one module per resource.

``common`` holds what every resource shares (``Page``, ``FromRow``, ``StrictBody``, number
bounds); each other module holds one resource's ``*Create / *Update / *Public`` families and
the functions that turn its rows into them. A class's name is its name in the OpenAPI document
(and so in the web client's generated types): names are unique across the package, and
renaming one is a change of the API.
"""
