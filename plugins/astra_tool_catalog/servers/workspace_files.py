"""A personal file workspace: folders and files (search, read, rename, copy, share, delete)."""

from __future__ import annotations

import random
from typing import Any

from astra_tool_catalog.catalog_model import ServerSpec, State, ToolError, find, next_id
from astra_tool_catalog.schema_builders import array, boolean, integer, obj, params, string
from astra_tool_catalog.vocabulary import day, email, people, vocabulary

SERVER = ServerSpec(
    "files",
    title="Workspace Files",
    description="Folders and documents of a personal cloud workspace.",
    domain="productivity",
)

FILE_ID = string("File id, e.g. FILE-1004.")
FOLDER_ID = string("Folder id, e.g. FLD-2.")
PERMISSIONS = ["view", "comment", "edit"]


def _content(name: str, topic: str) -> str:
    stem = name.rsplit(".", 1)[0].replace("-", " ")
    return f"{stem.capitalize()}: notes on {topic}. Owner review pending. Last edited by the team."


@SERVER.state
def build_state(rng: random.Random) -> State:
    folders: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    topics = vocabulary()["file_topics"]
    for f_index, (folder, names) in enumerate(vocabulary()["folders"].items(), 1):
        folders.append({"folder_id": f"FLD-{f_index}", "name": folder})
        for name in names:
            files.append(
                {
                    "file_id": f"FILE-{1001 + len(files)}",
                    "name": name,
                    "folder_id": f"FLD-{f_index}",
                    "size_bytes": rng.randint(2, 900) * 1024,
                    "modified": day(-rng.randint(1, 90)),
                    "tags": sorted(rng.sample(["draft", "final", "shared", "2025", "todo"], 2)),
                    "content": _content(name, rng.choice(topics)),
                    "shared_with": [],
                }
            )
    return {"folders": folders, "files": files, "contacts": [email(*p) for p in people(rng, 6)]}


@SERVER.scenario
def scenario(state: State, rng: random.Random) -> dict[str, Any]:
    file = rng.choice(state["files"])
    stem, ext = file["name"].rsplit(".", 1)
    word = rng.choice([w for w in stem.split("-") if not w.isdigit()] or [ext])
    return {
        "query": word,
        "folder_id": file["folder_id"],
        "file_id": file["file_id"],
        "new_name": f"{stem}-final.{ext}",
        "destination_folder_id": rng.choice(state["folders"])["folder_id"],
        "email": rng.choice(state["contacts"]),
        "permission": rng.choice(PERMISSIONS),
    }


def _folder_name(state: State, folder_id: str) -> str:
    return str(find(state, "folders", "folder_id", folder_id, "folder")["name"])


@SERVER.tool(
    "List every folder of the workspace with how many files it holds.",
    params(),
    returns=obj(
        {
            "folders": array(
                obj(
                    {
                        "folder_id": FOLDER_ID,
                        "name": string("Folder name."),
                        "file_count": integer("Files in the folder."),
                    }
                ),
                "All folders.",
            )
        }
    ),
    phrase="list the folders of my workspace",
)
def list_folders(state: State) -> dict[str, Any]:
    return {
        "folders": [
            {
                "folder_id": f["folder_id"],
                "name": f["name"],
                "file_count": sum(1 for x in state["files"] if x["folder_id"] == f["folder_id"]),
            }
            for f in state["folders"]
        ]
    }


@SERVER.tool(
    "List the files in a folder, most recently modified first.",
    params({"folder_id": FOLDER_ID}),
    returns=obj(
        {
            "folder_name": string("Name of the listed folder."),
            "files": array(
                obj(
                    {
                        "file_id": FILE_ID,
                        "name": string("File name."),
                        "size_bytes": integer("File size in bytes."),
                        "modified": string("Last modification date (YYYY-MM-DD)."),
                    }
                ),
                "Files in the folder.",
            ),
        }
    ),
    phrase="list the files in {folder_id}",
)
def list_files(state: State, folder_id: str) -> dict[str, Any]:
    name = _folder_name(state, folder_id)
    rows = [f for f in state["files"] if f["folder_id"] == folder_id]
    rows.sort(key=lambda f: (f["modified"], f["file_id"]), reverse=True)
    keys = ("file_id", "name", "size_bytes", "modified")
    return {"folder_name": name, "files": [{k: f[k] for k in keys} for f in rows]}


@SERVER.tool(
    "Search files whose name contains a word.",
    params({"query": string("Word to look for in file names.")}),
    returns=obj(
        {
            "files": array(
                obj(
                    {
                        "file_id": FILE_ID,
                        "name": string("File name."),
                        "folder_name": string("Name of the folder holding the file."),
                    }
                ),
                "Matching files.",
            )
        }
    ),
    phrase='search my files for "{query}"',
)
def search_files(state: State, query: str) -> dict[str, Any]:
    q = query.strip().lower()
    return {
        "files": [
            {
                "file_id": f["file_id"],
                "name": f["name"],
                "folder_name": _folder_name(state, f["folder_id"]),
            }
            for f in state["files"]
            if q and q in f["name"].lower()
        ]
    }


@SERVER.tool(
    "Read the text content of a file.",
    params({"file_id": FILE_ID}),
    returns=obj(
        {
            "file_id": FILE_ID,
            "name": string("File name."),
            "content": string("Text content of the file."),
        }
    ),
    phrase="open {file_id} and show me what it says",
)
def read_file(state: State, file_id: str) -> dict[str, Any]:
    f = find(state, "files", "file_id", file_id, "file")
    return {"file_id": file_id, "name": f["name"], "content": f["content"]}


@SERVER.tool(
    "Get the metadata of a file: size, modification date, tags and who it is shared with.",
    params({"file_id": FILE_ID}),
    returns=obj(
        {
            "file_id": FILE_ID,
            "name": string("File name."),
            "folder_name": string("Name of the folder holding the file."),
            "size_bytes": integer("File size in bytes."),
            "modified": string("Last modification date (YYYY-MM-DD)."),
            "tags": array(string("A tag."), "Tags on the file."),
            "shared_with": array(string("An email address."), "People the file is shared with."),
        }
    ),
    phrase="get the size, tags and sharing settings of {file_id}",
)
def get_file_info(state: State, file_id: str) -> dict[str, Any]:
    f = find(state, "files", "file_id", file_id, "file")
    return {
        "file_id": file_id,
        "name": f["name"],
        "folder_name": _folder_name(state, f["folder_id"]),
        "size_bytes": f["size_bytes"],
        "modified": f["modified"],
        "tags": list(f["tags"]),
        "shared_with": [s["email"] for s in f["shared_with"]],
    }


@SERVER.tool(
    "Rename a file, keeping it in its folder.",
    params(
        {
            "file_id": FILE_ID,
            "new_name": string(
                "The new file name, with its extension.", pattern=r"^[\w .()-]+\.\w+$"
            ),
        }
    ),
    returns=obj(
        {
            "file_id": FILE_ID,
            "previous_name": string("The name before renaming."),
            "name": string("The new file name."),
        }
    ),
    phrase='rename {file_id} to "{new_name}"',
)
def rename_file(state: State, file_id: str, new_name: str) -> dict[str, Any]:
    f = find(state, "files", "file_id", file_id, "file")
    clash = [
        x for x in state["files"] if x["folder_id"] == f["folder_id"] and x["name"] == new_name
    ]
    if clash and clash[0] is not f:
        raise ToolError(f"a file named {new_name!r} already exists in that folder")
    previous, f["name"] = f["name"], new_name
    f["modified"] = day(0)
    return {"file_id": file_id, "previous_name": previous, "name": new_name}


@SERVER.tool(
    "Copy a file into a folder; a copy in the same folder gets ' (copy)' in its name.",
    params(
        {
            "file_id": FILE_ID,
            "destination_folder_id": string("Id of the folder to copy the file into."),
        }
    ),
    returns=obj(
        {
            "file_id": string("Id of the new copy."),
            "name": string("Name of the new copy."),
            "folder_name": string("Name of the folder holding the copy."),
        }
    ),
    phrase="copy {file_id} into {destination_folder_id}",
)
def copy_file(state: State, file_id: str, destination_folder_id: str) -> dict[str, Any]:
    source = find(state, "files", "file_id", file_id, "file")
    folder = _folder_name(state, destination_folder_id)
    name = source["name"]
    if any(x["folder_id"] == destination_folder_id and x["name"] == name for x in state["files"]):
        stem, ext = name.rsplit(".", 1)
        name = f"{stem} (copy).{ext}"
    copy = {
        **source,
        "file_id": next_id(state, "FILE"),
        "name": name,
        "folder_id": destination_folder_id,
        "modified": day(0),
        "shared_with": [],
    }
    state["files"].append(copy)
    return {"file_id": copy["file_id"], "name": name, "folder_name": folder}


@SERVER.tool(
    "Share a file with someone by email, with view, comment or edit permission.",
    params(
        {
            "file_id": FILE_ID,
            "email": string("Email address of the person to share with."),
            "permission": string("Access level to grant.", enum=PERMISSIONS),
        }
    ),
    returns=obj(
        {
            "file_id": FILE_ID,
            "shared_with": string("Email address the file is now shared with."),
            "permission": string("Access level granted.", enum=PERMISSIONS),
            "share_link": string("Link the person can open."),
        }
    ),
    phrase="share {file_id} with {email} ({permission} access)",
)
def share_file(state: State, file_id: str, email: str, permission: str) -> dict[str, Any]:
    f = find(state, "files", "file_id", file_id, "file")
    if "@" not in email:
        raise ToolError(f"{email!r} is not an email address")
    f["shared_with"] = [s for s in f["shared_with"] if s["email"] != email]
    f["shared_with"].append({"email": email, "permission": permission})
    return {
        "file_id": file_id,
        "shared_with": email,
        "permission": permission,
        "share_link": f"https://files.example.com/s/{file_id.lower()}-{len(f['shared_with'])}",
    }


@SERVER.tool(
    "Delete a file permanently.",
    params({"file_id": FILE_ID}),
    returns=obj(
        {
            "file_id": FILE_ID,
            "name": string("Name of the deleted file."),
            "deleted": boolean("True once the file is gone."),
        }
    ),
    phrase="delete {file_id}",
)
def delete_file(state: State, file_id: str) -> dict[str, Any]:
    f = find(state, "files", "file_id", file_id, "file")
    state["files"].remove(f)
    return {"file_id": file_id, "name": f["name"], "deleted": True}
