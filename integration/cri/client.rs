//! The CRI client as blocking calls: one current-thread tokio runtime per containerd, each
//! call bounded by CALL_TIMEOUT, errors shown with what containerd and the runtime said.

use super::*;

impl Kube {
    pub(super) fn block<T>(
        &self,
        fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, tonic::Status> {
        self.rt.block_on(async {
            match tokio::time::timeout(CALL_TIMEOUT, fut).await {
                Ok(r) => r.map(|r| r.into_inner()),
                Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                    "no answer in {CALL_TIMEOUT:?}"
                ))),
            }
        })
    }

    /// Panic with the CRI error and what containerd and the runtime said.
    #[track_caller]
    pub fn ok<T>(&self, what: &str, r: Result<T, tonic::Status>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => panic!(
                "{what}: {} {}\n{}",
                e.code(),
                e.message(),
                self.scene().story()
            ),
        }
    }
}

/// Each CRI call as a blocking method (the client is cheap to clone; a call borrows it).
macro_rules! rpcs {
    ($($client:ident . $name:ident($req:ident) -> $resp:ident;)*) => {
        impl Kube {
            $(pub fn $name(&self, req: cri::$req) -> Result<cri::$resp, tonic::Status> {
                let mut c = self.$client.clone();
                self.block(async move { c.$name(req).await })
            })*
        }
    };
}

rpcs! {
    rs.version(VersionRequest) -> VersionResponse;
    rs.status(StatusRequest) -> StatusResponse;
    rs.run_pod_sandbox(RunPodSandboxRequest) -> RunPodSandboxResponse;
    rs.pod_sandbox_status(PodSandboxStatusRequest) -> PodSandboxStatusResponse;
    rs.stop_pod_sandbox(StopPodSandboxRequest) -> StopPodSandboxResponse;
    rs.remove_pod_sandbox(RemovePodSandboxRequest) -> RemovePodSandboxResponse;
    rs.list_pod_sandbox(ListPodSandboxRequest) -> ListPodSandboxResponse;
    rs.create_container(CreateContainerRequest) -> CreateContainerResponse;
    rs.start_container(StartContainerRequest) -> StartContainerResponse;
    rs.container_status(ContainerStatusRequest) -> ContainerStatusResponse;
    rs.list_containers(ListContainersRequest) -> ListContainersResponse;
    rs.exec_sync(ExecSyncRequest) -> ExecSyncResponse;
    rs.exec(ExecRequest) -> ExecResponse;
    rs.attach(AttachRequest) -> AttachResponse;
    rs.update_container_resources(UpdateContainerResourcesRequest) -> UpdateContainerResourcesResponse;
    rs.container_stats(ContainerStatsRequest) -> ContainerStatsResponse;
    rs.stop_container(StopContainerRequest) -> StopContainerResponse;
    rs.remove_container(RemoveContainerRequest) -> RemoveContainerResponse;
    is.list_images(ListImagesRequest) -> ListImagesResponse;
    is.image_status(ImageStatusRequest) -> ImageStatusResponse;
}
